from __future__ import annotations

import callfsm
import callfsm.testing


def _isort_style(names: list[str]) -> list[str]:
    # constants first, then classes and functions, as ruff's RUF022 sorts them
    return sorted(names, key=lambda n: (not n.isupper(), n))


def test_all_is_exactly_what_the_package_exports() -> None:
    exported = {
        name
        for name, value in vars(callfsm).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("callfsm.")
    } | {"HUSKYVOICE"}
    assert exported == set(callfsm.__all__)
    assert _isort_style(callfsm.__all__) == callfsm.__all__


def test_testing_namespace_exports() -> None:
    for name in callfsm.testing.__all__:
        assert hasattr(callfsm.testing, name)
    assert _isort_style(callfsm.testing.__all__) == callfsm.testing.__all__


def test_public_objects_are_documented() -> None:
    for module in (callfsm, callfsm.testing):
        for name in module.__all__:
            obj = getattr(module, name)
            if callable(obj):
                assert obj.__doc__, f"{module.__name__}.{name} has no docstring"
