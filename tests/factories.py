"""factory_boy factories for the study models. Images are tiny PNGs drawn in memory."""
import hashlib
import io

import factory
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from PIL import Image

from study import models

RAFDB_BASIC7 = ["Surprise", "Fear", "Disgust", "Happiness", "Sadness", "Anger", "Neutral"]
AFFECTNET8_CLASSES = ["Neutral", "Happiness", "Sadness", "Surprise", "Fear", "Disgust", "Anger", "Contempt"]


def png_bytes(seed: int, size: int = 16) -> bytes:
    """A small, distinct PNG for each seed."""
    image = Image.new("RGB", (size, size), ((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256))
    image.putpixel((seed % size, (seed // size) % size), (255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"researcher{n}")
    is_superuser = False
    is_staff = factory.LazyAttribute(lambda user: user.is_superuser)  # researchers need no admin rights
    password = factory.django.Password("pw-for-tests")

    @factory.post_generation
    def researcher(self, create, extracted, **kwargs):
        """A researcher (member of the "researchers" group) unless UserFactory(researcher=False)."""
        if create and extracted is not False:
            from study.services.researchers import researcher_group

            self.groups.add(researcher_group())


class LabelSetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.LabelSet
        django_get_or_create = ("name",)

    name = "RAF-DB basic-7"
    labels = RAFDB_BASIC7


class StudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Study

    slug = factory.Sequence(lambda n: f"study-{n}")
    title = factory.Sequence(lambda n: f"Study {n}")
    owner = factory.SubFactory(UserFactory)
    label_set = factory.SubFactory(LabelSetFactory)
    status = models.Study.Status.LIVE
    votes_per_image = 3
    images_per_participant = 5
    gold_rate = 0.0
    consent_text = "You agree to take part."
    instructions_text = "Pick the most prominent emotion."


class StimulusFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Stimulus

    study = factory.SubFactory(StudyFactory)
    original_name = factory.Sequence(lambda n: f"face_{n:04d}.png")

    @factory.lazy_attribute_sequence
    def sha256(self, n):
        return hashlib.sha256(png_bytes(n)).hexdigest()

    @factory.lazy_attribute_sequence
    def image(self, n):
        return ContentFile(png_bytes(n), name=f"face_{n:04d}.png")


class ParticipantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Participant

    study = factory.SubFactory(StudyFactory)
    token = factory.Sequence(lambda n: f"token-{n:08d}")


class VoteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Vote

    participant = factory.SubFactory(ParticipantFactory)
    stimulus = factory.SubFactory(StimulusFactory)
    label = "Happiness"
    response_ms = 800


class ModelVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.ModelVersion

    name = factory.Sequence(lambda n: f"model-{n}")
    owner = factory.SubFactory(UserFactory)
    is_public = True  # tests of other features run any model; ownership tests set owner/is_public themselves
    arch = "resnet18"
    sha256 = factory.Sequence(lambda n: hashlib.sha256(f"ckpt{n}".encode()).hexdigest())
    checkpoint = factory.LazyAttribute(lambda o: ContentFile(b"not a real checkpoint", name="m.pt"))
    classes = RAFDB_BASIC7
    status = models.ModelVersion.Status.VALID


class PredictionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Prediction

    stimulus = factory.SubFactory(StimulusFactory)
    model_version = factory.SubFactory(ModelVersionFactory)
    distribution = [1 / 7] * 7
    ambiguity = 1.0
