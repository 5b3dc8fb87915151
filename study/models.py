"""Data of the study domain. Data only: fields, constraints, indexes, __str__; workflows live in services."""
import secrets
import uuid

from django.conf import settings
from django.db import models


def _completion_code() -> str:
    return secrets.token_hex(4).upper()


class LabelSet(models.Model):
    """An ordered list of emotion names; a model's classes are matched to it by name."""

    name = models.CharField(max_length=64, unique=True)
    labels = models.JSONField(help_text="Ordered emotion names, e.g. ['Surprise', 'Fear', ...].")
    non_emotion_labels = models.JSONField(
        default=list, blank=True,
        help_text="Answers that are not emotions (FER+'s 'Unknown', 'Not a face'): offered after the emotions, "
                  "left out of the emotion distributions and reported as counts.")
    keys = models.JSONField(
        default=list, blank=True,
        help_text="Keyboard key per answer (emotions, then non-emotion answers); empty means 1, 2, 3, ...")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="label_sets")

    def __str__(self) -> str:
        return self.name

    @property
    def answers(self) -> list[str]:
        """Every answer a participant may give: the emotions in order, then the non-emotion answers."""
        return [*self.labels, *self.non_emotion_labels]


class Study(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        LIVE = "live", "Live"
        PAUSED = "paused", "Paused"
        CLOSED = "closed", "Closed"

    class Allocation(models.TextChoices):
        FIXED = "fixed", "Fixed: votes_per_image for every image"
        ADAPTIVE = "adaptive", "Adaptive: more votes where the distribution is still unsettled"

    slug = models.SlugField(max_length=64, unique=True)
    title = models.CharField(max_length=200)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="studies")
    label_set = models.ForeignKey(LabelSet, on_delete=models.PROTECT, related_name="studies")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT, db_index=True)
    votes_per_image = models.PositiveIntegerField(default=10)
    allocation = models.CharField(max_length=8, choices=Allocation.choices, default=Allocation.FIXED)
    min_votes_per_image = models.PositiveIntegerField(
        default=3, help_text="Adaptive allocation: every image gets at least this many votes.")
    max_votes_per_image = models.PositiveIntegerField(default=30, help_text="Adaptive allocation: no image gets more.")
    stability_threshold = models.FloatField(
        default=0.02, help_text="Adaptive allocation: an image is settled when the expected JS divergence of its "
                                "Dirichlet posterior to its mean is at most this.")
    images_per_participant = models.PositiveIntegerField(default=20)
    gold_rate = models.FloatField(default=0.1,
                                  help_text="Fraction of a participant's trials that are gold (attention) items.")
    gold_pass_threshold = models.FloatField(default=0.75,
                                            help_text="Fraction of gold items a participant must answer correctly.")
    shuffle_labels = models.BooleanField(default=False, help_text="Shuffle the emotion buttons once per participant.")
    consent_text = models.TextField(blank=True)
    instructions_text = models.TextField(blank=True)
    completion_code = models.CharField(max_length=64, default=_completion_code, blank=True)
    completion_url = models.URLField(
        max_length=500, blank=True,
        help_text="Where to send a participant who finished; the code is appended as ?cc=CODE.")
    url_parameters = models.JSONField(
        default=list, blank=True,
        help_text="Extra URL parameter names to record, beside PROLIFIC_PID, STUDY_ID and SESSION_ID.")
    no_consent_code = models.CharField(max_length=64, default=_completion_code, blank=True,
                                       help_text="Code shown to a participant who does not consent.")
    screened_out_code = models.CharField(max_length=64, default=_completion_code, blank=True,
                                         help_text="Code shown to a participant who failed the attention checks.")
    finish_when_paused = models.BooleanField(
        default=True, help_text="While paused, participants who already started may finish; newcomers wait.")
    fast_response_ms = models.PositiveIntegerField(
        default=300, help_text="Votes faster than this many milliseconds are flagged too_fast in the exports (0: off).")
    language = models.CharField(max_length=8, choices=settings.LANGUAGES, default="en",
                                help_text="Language of the participant pages.")
    random_seed = models.IntegerField(default=0)
    include_simulated = models.BooleanField(
        default=True, help_text="Count the votes of simulated participants (e.g. the demo's annotator panel) in the "
                                "human distributions.")
    class FaceCrop(models.TextChoices):
        OFF = "off", "Off: import each image as it is"
        SQUARE = "square", "Detect faces; one square crop per face, unaligned"
        ALIGNED = "aligned", "Detect faces; one square crop per face, eyes levelled"

    face_crop = models.CharField(
        max_length=8, choices=FaceCrop.choices, default=FaceCrop.OFF, verbose_name="Detect and crop faces on import",
        help_text="For uncropped photos: a worker finds the faces in every uploaded photo and each face becomes one "
                  "image (source photo and face box kept). Unaligned crops match FER2013-style models; aligned ones "
                  "suit models trained on aligned faces (RAF-DB, AffectNet). Fixed once the study is launched.")
    readable_by_all_researchers = models.BooleanField(
        default=False, help_text="Every researcher may read its comparison view and exports (the demo study); "
                                 "only the owner may change it.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "studies"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.title} ({self.slug})"


class StudyCollaborator(models.Model):
    """Another researcher given access to a study by its owner: read-only (viewer) or editor."""

    class Role(models.TextChoices):
        VIEWER = "viewer", "Read-only"
        EDITOR = "editor", "Editor"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="collaborators")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="collaborations")
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.VIEWER)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["added_at"]
        constraints = [models.UniqueConstraint(fields=["study", "user"], name="collaborator_unique_per_study")]

    def __str__(self) -> str:
        return f"{self.user} ({self.role}) on {self.study.slug}"


def stimulus_upload_to(instance: "Stimulus", filename: str) -> str:
    """Content-addressed path: stimuli/<study id>/<sha[:2]>/<sha>.<ext>."""
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return f"stimuli/{instance.study_id}/{instance.sha256[:2]}/{instance.sha256}.{ext}"


class Stimulus(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="stimuli")
    image = models.ImageField(upload_to=stimulus_upload_to, width_field="width", height_field="height", max_length=255)
    sha256 = models.CharField(max_length=64)
    original_name = models.CharField(max_length=255, blank=True)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    ground_truth = models.CharField(max_length=64, blank=True, help_text="Label name from the study's label set.")
    valence = models.FloatField(null=True, blank=True)
    arousal = models.FloatField(null=True, blank=True)
    is_gold = models.BooleanField(default=False)
    source = models.CharField(max_length=128, blank=True)
    metadata = models.JSONField(
        default=dict, blank=True,
        help_text="Where the image came from when it was cut out of a photo (study.services.face_imports): "
                  "source_photo, face_index, face_x/y/w/h in the photo's pixels, face_score, face_crop, ...")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "stimuli"
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["study", "sha256"], name="stimulus_unique_sha_per_study")]
        indexes = [models.Index(fields=["study", "is_gold"])]

    def __str__(self) -> str:
        return self.original_name or self.sha256[:12]


class Participant(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="participants")
    token = models.CharField(max_length=64, unique=True, help_text="Opaque secret kept in the participant's cookie.")
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    external_ids = models.JSONField(default=dict, blank=True)
    user_agent_family = models.CharField(max_length=64, blank=True)
    device_type = models.CharField(max_length=8, blank=True, help_text="phone, tablet or desktop, from the User-Agent.")
    is_test = models.BooleanField(default=False, help_text="A researcher's preview; left out of the data by default.")
    client_hash = models.CharField(max_length=16, blank=True, editable=False,
                                   help_text="Keyed hash of the client address, to rate-limit new sessions; not exported.")
    label_order = models.JSONField(default=list, blank=True, help_text="Button order shown to this participant.")
    started_at = models.DateTimeField(auto_now_add=True)
    consented_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    gold_answered = models.PositiveIntegerField(default=0)
    gold_correct = models.PositiveIntegerField(default=0)
    gold_score = models.FloatField(null=True, blank=True)
    excluded = models.BooleanField(default=False, db_index=True)
    exclusion_reason = models.CharField(max_length=200, blank=True)
    is_simulated = models.BooleanField(
        default=False, db_index=True,
        help_text="A simulated annotator (e.g. the synthetic faces' panel), not a person; never takes a quota slot.")

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["study", "client_hash", "started_at"], name="participant_client_recent")]

    def __str__(self) -> str:
        return str(self.public_id)


class Assignment(models.Model):
    """One image served to one participant, at one position of their sequence."""

    # No index of their own: the unique constraints lead with participant, the (stimulus, answered_at) index with
    # stimulus. Each vote updates answered_at, which rewrites every index entry of the row (not a HOT update).
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="assignments", db_index=False)
    stimulus = models.ForeignKey(Stimulus, on_delete=models.CASCADE, related_name="assignments", db_index=False)
    position = models.PositiveIntegerField()
    served_at = models.DateTimeField(auto_now_add=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["participant", "position"]
        constraints = [
            models.UniqueConstraint(fields=["participant", "stimulus"], name="assignment_unique_stimulus"),
            models.UniqueConstraint(fields=["participant", "position"], name="assignment_unique_position"),
        ]
        indexes = [models.Index(fields=["stimulus", "answered_at"])]

    def __str__(self) -> str:
        return f"{self.participant_id}#{self.position}"


class Vote(models.Model):
    # No index of their own: the unique constraint leads with participant, the (stimulus, label) index with stimulus.
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="votes", db_index=False)
    stimulus = models.ForeignKey(Stimulus, on_delete=models.CASCADE, related_name="votes", db_index=False)
    label = models.CharField(max_length=64)
    response_ms = models.PositiveIntegerField(help_text="Milliseconds from the image being shown to the choice.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["participant", "stimulus"], name="vote_unique_per_participant")]
        indexes = [models.Index(fields=["stimulus", "label"])]

    def __str__(self) -> str:
        return f"{self.label} on {self.stimulus_id}"


def checkpoint_upload_to(instance: "ModelVersion", filename: str) -> str:
    """Content-addressed path: models/<sha[:2]>/<sha>.pt."""
    return f"models/{instance.sha256[:2]}/{instance.sha256}.pt"


class ModelVersion(models.Model):
    """A registered checkpoint. Validated by loading it in a worker (the web process never imports torch).

    Owned by one researcher, who alone may delete it or share it (with named researchers, or with everyone
    by making it public); names are unique per owner.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending validation"
        VALID = "valid", "Valid"
        INVALID = "invalid", "Invalid"

    class Kind(models.TextChoices):
        EXPRESSION = "expression", "Expression classifier"
        VA = "va", "Valence/arousal regressor"

    name = models.CharField(max_length=100)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_models")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.EXPRESSION,
                            help_text="A VA regressor serves the demo page's valence/arousal, never class predictions.")
    is_public = models.BooleanField(default=False, help_text="Every researcher may see and run it.")
    shared_with = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="shared_models",
                                         help_text="Researchers besides the owner who may see and run it.")
    arch = models.CharField(max_length=64, blank=True)
    checkpoint = models.FileField(upload_to=checkpoint_upload_to, max_length=255)
    sha256 = models.CharField(max_length=64)
    classes = models.JSONField(default=list, blank=True, help_text="Class names in the model's output order.")
    input_size = models.PositiveIntegerField(default=112)
    normalization = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    notes = models.TextField(blank=True)
    is_demo = models.BooleanField(default=False)
    training_data = models.CharField(max_length=200, blank=True,
                                     help_text="What the model was trained on, shown beside its predictions.")
    training_domain = models.CharField(max_length=10, blank=True,
                                       choices=[("synthetic", "Synthetic faces"), ("photo", "Real photographs")],
                                       help_text="Pages warn when this differs from the images the model is run on.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    validation_error = models.TextField(blank=True)
    validation_started_at = models.DateTimeField(null=True, blank=True,
                                                 help_text="When a worker began loading the file (progress).")
    lambda_export = models.FileField(upload_to="models/lambda/", blank=True, max_length=255,
                                     help_text="Optional CSV of the training run's uncertainty factors (Figure 4).")
    figure4_image = models.FileField(upload_to="models/figure4/", blank=True, max_length=255,
                                     help_text="Optional PNG of Figure 4 (python -m ml.uncertainty --out).")
    figure4_gallery = models.FileField(upload_to="models/figure4/", blank=True, max_length=255,
                                       help_text="Optional zip of Figure 4 thumbnails (python -m ml.uncertainty --gallery).")
    figure4_items = models.JSONField(default=list, blank=True,
                                     help_text="The gallery's captions in display order (read from its gallery.csv).")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="model_unique_name_per_owner"),
            models.UniqueConstraint(fields=["owner", "sha256"], name="model_unique_file_per_owner"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_va(self) -> bool:
        return self.kind == self.Kind.VA


class Progress(models.Model):
    """How far a background job has got: the worker counts `done` of `total` and stamps start and end."""

    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class ResearcherJob(Progress):
    """A job a researcher started from a page (predictions, an upload): who and when, newest first."""

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(Progress.Meta):
        abstract = True
        ordering = ["-created_at"]


class PredictionJob(ResearcherJob):
    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="prediction_jobs")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="jobs")
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED, db_index=True)
    force = models.BooleanField(default=False, help_text="Predict again images that already have a prediction.")
    allow_missing_labels = models.BooleanField(default=False,
                                               help_text="Run although the model lacks some study labels (they get 0).")
    missing_labels = models.JSONField(default=list, blank=True,
                                      help_text="Study labels the model lacks (probability 0 in every prediction).")
    batch_size = models.PositiveIntegerField(default=32)
    failed = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    celery_task_id = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"{self.model_version} on {self.study.slug} ({self.state})"


class Prediction(models.Model):
    stimulus = models.ForeignKey(Stimulus, on_delete=models.CASCADE, related_name="predictions")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="predictions")
    distribution = models.JSONField(help_text="Probabilities in the study's label order; sums to 1.")
    dropped_mass = models.FloatField(
        default=0.0, help_text="Probability on model classes the study lacks, removed before renormalising.")
    valence = models.FloatField(null=True, blank=True)
    arousal = models.FloatField(null=True, blank=True)
    ambiguity = models.FloatField(help_text="Normalised entropy of the distribution, in [0, 1].")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["stimulus", "model_version"], name="prediction_unique_per_model")]

    def __str__(self) -> str:
        return f"{self.model_version_id} on {self.stimulus_id}"


class VoteSource(models.Model):
    """A named set of existing human annotations imported into a study (e.g. "FER+ taggers")."""

    class Kind(models.TextChoices):
        LONG = "long", "One row per annotator and image"
        COUNTS = "counts", "One row per image with a count per label"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="vote_sources")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=6, choices=Kind.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["study", "name"], name="vote_source_unique_name")]

    def __str__(self) -> str:
        return self.name


class ImportedVote(models.Model):
    """Votes of an imported source: one annotator's label (long format, count 1) or a label's count
    (count format, annotator blank)."""

    source = models.ForeignKey(VoteSource, on_delete=models.CASCADE, related_name="votes")
    stimulus = models.ForeignKey(Stimulus, on_delete=models.CASCADE, related_name="imported_votes")
    annotator = models.CharField(max_length=100, blank=True)
    label = models.CharField(max_length=64)
    count = models.PositiveIntegerField(default=1)
    response_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "stimulus", "annotator"], condition=~models.Q(annotator=""),
                                    name="imported_vote_unique_per_annotator"),
            models.UniqueConstraint(fields=["source", "stimulus", "label"], condition=models.Q(annotator=""),
                                    name="imported_vote_unique_count"),
        ]

    def __str__(self) -> str:
        return f"{self.label} x{self.count} on {self.stimulus_id}"


class UploadBatch(ResearcherJob):
    """A big upload stored as it came, then imported by a worker with progress and a final report."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Importing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="upload_batches")
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED, db_index=True)
    archive = models.FileField(upload_to="uploads/", max_length=255, blank=True,
                               help_text="The stored upload (a zip of the files); removed once imported.")
    manifest = models.FileField(upload_to="uploads/", max_length=255, blank=True)
    original_name = models.CharField(max_length=255, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    imported = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=list, blank=True, help_text="[name, status, reason] per file (capped).")
    report_left_out = models.JSONField(default=dict, blank=True,
                                       help_text="Rows the report's cap left out, per status: {status: count}.")
    face_crop = models.CharField(max_length=8, blank=True,
                                 help_text="The study's face cropping when uploaded (square, aligned); empty: off.")
    keep_faceless = models.BooleanField(default=False, help_text="Photos with no face are imported whole.")
    faces = models.PositiveIntegerField(default=0, help_text="Faces found (each one image).")
    faceless = models.PositiveIntegerField(default=0, help_text="Photos in which no face was found.")
    error = models.TextField(blank=True)
    restarts = models.PositiveSmallIntegerField(
        default=0, help_text="How often a stopped worker interrupted the import, which then started again from the "
                             "first file (files it had imported come back as duplicates of themselves).")

    def __str__(self) -> str:
        return f"upload {self.pk} to {self.study_id} ({self.state})"


class SetupStep(Progress):
    """One step of the first-run bootstrap (build or register a model, queue its predictions), with the
    progress the worker reports; the models page and `run_embedded`'s terminal show it."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    key = models.CharField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED)
    message = models.CharField(max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.title} ({self.state})"

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else (100 if self.state == self.State.DONE else 0)

    @property
    def finished(self) -> bool:
        return self.state in (self.State.DONE, self.State.FAILED)


class DemoUpload(models.Model):
    """A visitor's photo on the /demo/ page. The file lives only while its task runs; the result expires."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED)
    temp_path = models.CharField(max_length=255, blank=True,
                                 help_text="Temporary file under MEDIA_ROOT; emptied when the task ends.")
    result = models.JSONField(default=dict, blank=True)
    error = models.CharField(max_length=500, blank=True)
    client_key = models.CharField(max_length=64, db_index=True,
                                  help_text="Keyed hash of the client address (rate limiting; no IP stored).")
    whole_image = models.BooleanField(default=False)
    donate = models.BooleanField(default=False)
    consent_text = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"demo upload {self.public_id} ({self.state})"


def donation_upload_to(instance: "DemoDonation", filename: str) -> str:
    return f"donations/{instance.sha256[:2]}/{instance.sha256}.png"


class DemoDonation(models.Model):
    """A face crop a demo visitor donated to research, with the consent text they agreed to and when."""

    image = models.ImageField(upload_to=donation_upload_to, max_length=255)
    sha256 = models.CharField(max_length=64, unique=True)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    consent_text = models.TextField()
    consented_at = models.DateTimeField()
    source_upload = models.UUIDField(help_text="public_id of the DemoUpload it came from (that row expires).")
    face_number = models.PositiveIntegerField()
    box = models.JSONField(default=list)
    imported_into = models.ManyToManyField(Study, blank=True, related_name="demo_donations")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"donated face {self.face_number} of {self.source_upload}"
