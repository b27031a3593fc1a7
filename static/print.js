// The "Print" button of the recovery codes page: prints the page. A file, because the
// Content-Security-Policy allows no inline script; without JavaScript the button stays
// hidden and the browser's own Print works the same.
"use strict";
document.querySelectorAll("[data-print]").forEach(function (button) {
  button.hidden = false;
  button.addEventListener("click", function () {
    window.print();
  });
});
