"""Forms of the self-service pages.

Forms only parse and resolve names to objects (a username to a user, a team name to a team of
the page's organization); the services validate and store, and `apply_service_errors` puts a
service's ValidationError next to the field it names.
"""
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from accounts.models import User
from accounts.validators import NAME_MAX_LENGTH, validate_name_component
from registry_policies.repositories.models import Repository
from registry_policies.tenancy.models import Namespace, OrganizationMembership, Team
from registry_policies.tenancy.services import Grantee
from registry_policies.web.reserved import validate_not_reserved

ROLE_CHOICES = [("read", "Read — pull"), ("write", "Write — pull, push, delete tags"),
                ("admin", "Admin — settings and permissions")]


def apply_service_errors(form: forms.Form, error: ValidationError, *,
                         aliases: dict[str, str] | None = None) -> None:
    """Attach a service's ValidationError to `form`: each named field next to that field (through
    `aliases` when the service's name differs from the form's), anything else above the form."""
    aliases = aliases or {}
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, errors in error.error_dict.items():
        name = aliases.get(field, field)
        form.add_error(name if name in form.fields else None, errors)


def _existing_user(username: str) -> User:
    user = User.objects.filter(username=username.strip().lower()).first()
    if user is None:
        raise ValidationError(f"There is no user named “{username.strip()}”.", code="unknown_user")
    return user


class OrganizationCreateForm(forms.Form):
    name = forms.CharField(max_length=NAME_MAX_LENGTH,
                           validators=[validate_name_component, validate_not_reserved],
                           help_text="Also the namespace of its repositories: lowercase letters, digits, "
                                     "single '.', '_' or '-' between them.")
    description = forms.CharField(max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2}))


class RepositoryCreateForm(forms.Form):
    namespace = forms.ChoiceField(help_text="Only namespaces where you may create repositories are listed.")
    name = forms.CharField(max_length=NAME_MAX_LENGTH, validators=[validate_name_component],
                           help_text="Lowercase letters and digits, separated by single '.', '_' or '-'.")
    visibility = forms.ChoiceField(choices=Repository.Visibility.choices,
                                   initial=Repository.Visibility.PRIVATE, widget=forms.RadioSelect)
    description = forms.CharField(max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args: Any, namespaces: list[Namespace], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._namespaces = {namespace.name: namespace for namespace in namespaces}
        self.fields["namespace"].choices = [(name, name) for name in self._namespaces]  # type: ignore[attr-defined]

    def clean_namespace(self) -> Namespace:
        return self._namespaces[self.cleaned_data["namespace"]]


class RepositorySettingsForm(forms.Form):
    visibility = forms.ChoiceField(choices=Repository.Visibility.choices, widget=forms.RadioSelect)
    description = forms.CharField(max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 3}))
    immutable_tags = forms.BooleanField(required=False,
                                        help_text="A pushed tag can be neither moved nor deleted.")
    scan_on_push = forms.BooleanField(required=False, help_text="Scan every pushed image for components and "
                                                                "vulnerabilities.")


class RepositoryDeleteForm(forms.Form):
    confirm = forms.CharField(label="Type the full name of the repository to confirm")

    def __init__(self, *args: Any, repository: Repository, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._full_name = repository.full_name

    def clean_confirm(self) -> str:
        value = self.cleaned_data["confirm"].strip()
        if value != self._full_name:
            raise ValidationError(f"Type “{self._full_name}” exactly.", code="mismatch")
        return value


class GrantForm(forms.Form):
    """A role on a repository for a user, or (in an organization's namespace) for one of its teams."""

    user = forms.CharField(max_length=150, required=False, label="User")
    team = forms.ModelChoiceField(queryset=Team.objects.none(), required=False, to_field_name="name",
                                  empty_label="—", label="or a team")
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial="read")

    def __init__(self, *args: Any, namespace: Namespace, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if namespace.organization_id:
            self.fields["team"].queryset = Team.objects.filter(  # type: ignore[attr-defined]
                organization_id=namespace.organization_id).order_by("name")
        else:
            del self.fields["team"]

    def clean_user(self) -> User | None:
        username = self.cleaned_data["user"].strip()
        return _existing_user(username) if username else None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        user, team = cleaned.get("user"), cleaned.get("team")
        if self.errors:
            return cleaned
        if (user is None) == (team is None):
            raise ValidationError("Name either a user or a team.", code="grantee")
        cleaned["grantee"] = Grantee(user=user, team=team)
        return cleaned


class RevokeForm(forms.Form):
    """Which direct grant to remove, as listed by `tenancy.services.repository_grants`."""

    kind = forms.ChoiceField(choices=[("user", "user"), ("team", "team")], widget=forms.HiddenInput)
    name = forms.CharField(max_length=300, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        if cleaned["kind"] == "user":
            cleaned["grantee"] = Grantee(user=_existing_user(cleaned["name"]))
            return cleaned
        organization, _, team_name = cleaned["name"].partition("/")
        team = Team.objects.select_related("group", "organization").filter(
            organization__name=organization, name=team_name).first()
        if team is None:
            raise ValidationError("There is no such team.", code="unknown_team")
        cleaned["grantee"] = Grantee(team=team)
        return cleaned


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=OrganizationMembership.Role.choices,
                             initial=OrganizationMembership.Role.MEMBER)

    def clean_username(self) -> User:
        return _existing_user(self.cleaned_data["username"])


class UsernameForm(forms.Form):
    """Names one existing user (team membership, removing a member)."""

    username = forms.CharField(max_length=150)

    def clean_username(self) -> User:
        return _existing_user(self.cleaned_data["username"])


class TeamCreateForm(forms.Form):
    name = forms.CharField(max_length=NAME_MAX_LENGTH, validators=[validate_name_component],
                           help_text="Lowercase letters and digits, separated by single '.', '_' or '-'.")
    description = forms.CharField(max_length=500, required=False)


class TokenCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. “ci-pipeline”.")
    expires_on = forms.DateField(required=False, label="Expires after",
                                 widget=forms.DateInput(attrs={"type": "date"}),
                                 help_text="The token stops working at the end of this day (UTC). "
                                           "Leave empty for a token that does not expire.")

    def clean_expires_on(self) -> date | None:
        expires_on: date | None = self.cleaned_data["expires_on"]
        if expires_on is not None and expires_on < datetime.now(UTC).date():
            raise ValidationError("Choose today or a later day.", code="past")
        return expires_on

    @property
    def expires_at(self) -> datetime | None:
        """The end of the chosen day in UTC, as the service stores it."""
        expires_on = self.cleaned_data.get("expires_on")
        if expires_on is None:
            return None
        return datetime.combine(expires_on + timedelta(days=1), time.min, tzinfo=UTC)
