"""HTML pages by audience: participant.py, researcher.py, models.py (registry and jobs), compare.py.

Views are thin: they read through study.selectors, write only through study.services, and turn a
study.errors.DomainError into a 4xx page. URLs: study/urls.py.
"""
