"""aioplatform.testing's __all__ lists exactly its public names (its submodules aside)."""

import types

import aioplatform.testing


def test_all_lists_every_public_name_of_the_testing_package() -> None:
    public = {
        name
        for name in dir(aioplatform.testing)
        if name.isidentifier()
        and not name.startswith("_")
        and not isinstance(getattr(aioplatform.testing, name), types.ModuleType)
    }
    assert set(aioplatform.testing.__all__) == public
    for name in aioplatform.testing.__all__:
        assert getattr(aioplatform.testing, name) is not None
