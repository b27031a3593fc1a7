// Shows each <time data-local datetime="...Z"> of the page in the browser's time zone, as
// "YYYY-MM-DD HH:MM:SS zone" (SPEC section 11). The server writes the UTC time as the text
// and the title; without this script the page stays correct, in UTC.
"use strict";
(function () {
  var format = new Intl.DateTimeFormat("en-US", {
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
    timeZoneName: "short",
  });
  function local(date) {
    var parts = {};
    format.formatToParts(date).forEach(function (part) {
      parts[part.type] = part.value;
    });
    return parts.year + "-" + parts.month + "-" + parts.day + " " + parts.hour + ":" +
      parts.minute + ":" + parts.second + " " + parts.timeZoneName;
  }
  document.querySelectorAll("time[data-local]").forEach(function (element) {
    var date = new Date(element.getAttribute("datetime"));
    if (!isNaN(date.getTime())) {
      element.textContent = local(date);
    }
  });
})();
