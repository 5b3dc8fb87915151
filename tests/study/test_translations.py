"""Participant pages in the study's language (German complete), and the committed catalogs up to date."""
import gettext
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from study.management.commands.compile_translations import mo_bytes, parse_po
from study.models import Study
from study.services.studies import study_create
from tests.factories import LabelSetFactory, StimulusFactory, StudyFactory, UserFactory

LOCALE = Path(settings.LOCALE_PATHS[0])
PO = LOCALE / "de" / "LC_MESSAGES" / "django.po"


def test_every_german_message_is_translated_and_the_committed_mo_matches_the_po():
    text = PO.read_text(encoding="utf-8")
    entries = [block for block in text.split("\n\n")[1:] if "msgid" in block]
    untranslated = [block for block in entries if re.search(r'^msgstr ""\s*$', block, re.MULTILINE)]
    assert not untranslated and "#, fuzzy" not in text
    with open(PO.with_suffix(".mo"), "rb") as handle:
        committed = gettext.GNUTranslations(handle)._catalog
    built = parse_po(text)
    assert {k: v for k, v in committed.items() if k} == {k: v for k, v in built.items() if k}
    assert len(built) - 1 == len(entries)


def test_pure_python_compiler_writes_a_catalog_gettext_reads(tmp_path):
    path = tmp_path / "x.mo"
    path.write_bytes(mo_bytes({"": "Content-Type: text/plain; charset=UTF-8\n", "Yes": "Ja",
                               "emotion\x04Anger": "Wut"}))
    with open(path, "rb") as handle:
        catalog = gettext.GNUTranslations(handle)
    assert catalog.gettext("Yes") == "Ja" and catalog.pgettext("emotion", "Anger") == "Wut"


@pytest.mark.django_db
def test_a_german_study_speaks_german_to_participants_and_stores_the_label_names():
    study = StudyFactory(language="de", images_per_participant=1, consent_text="")
    StimulusFactory(study=study)
    client = Client()
    consent = client.get(f"/s/{study.slug}/")
    assert consent["Content-Language"] == "de" and '<html lang="de">' in consent.content.decode()
    assert "Ich stimme zu" in consent.content.decode()
    client.post(f"/s/{study.slug}/consent/", {"consent": "agree"})
    assert "So funktioniert es" in client.get(f"/s/{study.slug}/instructions/").content.decode()
    client.post(f"/s/{study.slug}/start/")
    trial = client.get(f"/s/{study.slug}/trial/").content.decode()
    assert 'value="Happiness"' in trial and "<span>Freude</span>" in trial and "1 von 1" in trial
    stimulus = re.search(r'name="stimulus" value="([0-9a-f-]{36})"', trial).group(1)
    client.post(f"/s/{study.slug}/trial/", {"stimulus": stimulus, "label": "Happiness", "response_ms": 800})
    assert "Vielen Dank!" in client.get(f"/s/{study.slug}/done/").content.decode()
    english = StudyFactory(language="en")
    StimulusFactory(study=english)
    assert "I agree" in Client().get(f"/s/{english.slug}/").content.decode()


@pytest.mark.django_db
def test_default_texts_come_in_the_study_language():
    study = study_create(owner=UserFactory(), title="T", slug="t-de", label_set=LabelSetFactory(), language="de")
    assert study.consent_text.startswith("Wir laden Sie ein") and study.instructions_text.startswith("Wählen Sie")
    english = study_create(owner=None, title="T", slug="t-en", label_set=LabelSetFactory())
    assert english.consent_text.startswith("You are invited")
    assert Study.objects.get(slug="t-de").language == "de"
