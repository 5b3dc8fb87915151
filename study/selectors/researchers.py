"""Who is a researcher: an active user who is a superuser or a member of the "researchers" group.

`is_staff` (the admin site) is neither needed nor enough. study.services.researchers adds researchers.
"""
from __future__ import annotations

RESEARCHERS_GROUP = "researchers"


def is_researcher(user) -> bool:
    if not (user and user.is_authenticated and user.is_active):
        return False
    return user.is_superuser or user.groups.filter(name=RESEARCHERS_GROUP).exists()
