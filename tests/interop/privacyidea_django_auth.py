"""Signs in through django-privacyidea-auth (PyPI), privacyIDEA's authentication backend
for Django, against a server that answers privacyIDEA's /validate/check: the real client
code, unchanged, in a throw-away Django project.

Usage: privacyidea_django_auth.py URL USERNAME, with the password on standard input.
Prints "accepted USERNAME" or "rejected".
"""
import sys

import django
from django.conf import settings

url, username = sys.argv[1], sys.argv[2]
password = sys.stdin.readline().rstrip("\n")
settings.configure(
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes"],
    PRIVACYIDEA={
        "url": url,
        "timeout": 10,
        "ssl_verify": True,
        "create_user": True,
        "update_attributes": False,
        "realm": None,
    },
    USE_TZ=True,
)
django.setup()

from django.core.management import call_command  # noqa: E402

call_command("migrate", verbosity=0, run_syncdb=True)

from django_privacyidea_auth.privacyidea_auth import PrivacyIDEA  # noqa: E402

user = PrivacyIDEA().authenticate(username=username, password=password)
print(f"accepted {user.username}" if user else "rejected")
