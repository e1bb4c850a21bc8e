# Kept for tools that still call setup.py; pyproject.toml is the source of truth.
from setuptools import find_packages, setup

from email_sync import __version__

setup(
	name="email_sync",
	version=__version__,
	description="Sync Gmail, Microsoft 365 and IMAP mailboxes onto ERPNext Customers, Contacts and Issues",
	packages=find_packages(include=["email_sync", "email_sync.*"]),
	zip_safe=False,
	include_package_data=True,
	install_requires=["google-api-python-client>=2.2.0,<3", "msal>=1.20,<2", "google-auth-oauthlib>=0.4.6,<2", "charset-normalizer>=2"],
)
