"""Every role's meta/argument_specs.yml documents exactly its defaults, with the same values."""

import os

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLES = sorted(os.listdir(os.path.join(ROOT, "roles")))


def load(role, *path):
    with open(os.path.join(ROOT, "roles", role, *path), encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_equal_defaults(role):
    defaults = load(role, "defaults", "main.yml")
    options = load(role, "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert sorted(options) == sorted(defaults), "variables in one file but not the other"
    for name, value in defaults.items():
        assert options[name].get("default") == value, f"{name}: spec default {options[name].get('default')!r} != defaults {value!r}"
        assert options[name].get("description"), f"{name} has no description"


@pytest.mark.parametrize("role", ROLES)
def test_every_variable_carries_the_role_prefix(role):
    assert all(name.startswith(f"{role}_") for name in load(role, "defaults", "main.yml"))


def test_there_are_roles():
    assert {"mtls_ca", "mtls_certs", "mtls_nginx", "mtls_app"} <= set(ROLES)


@pytest.mark.parametrize("role", ROLES)
def test_every_entry_point_says_what_it_does_itself(role):
    """ansible-doc and the docs site show each entry point on its own: a copy of main's text says nothing."""
    specs = load(role, "meta", "argument_specs.yml")["argument_specs"]
    tasks = {name[:-len(".yml")] for name in os.listdir(os.path.join(ROOT, "roles", role, "tasks"))}
    assert set(specs) <= tasks, "an entry point without its tasks file"
    for name, spec in specs.items():
        assert spec.get("short_description") and spec.get("description"), f"{name}: no short_description or description"
        if name != "main":
            assert spec["short_description"] != specs["main"]["short_description"], f"{name} repeats main's short_description"
            assert spec["description"] != specs["main"]["description"], f"{name} repeats main's description"
