"""scim-connector: HR-driven SCIM 2.0 provisioning for ACM/IDM-style identity providers."""

__version__ = "0.1.0"
