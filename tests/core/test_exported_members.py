"""The public surface: __all__ lists exactly the public names of the package."""

import aioplatform


def test_all_lists_every_public_name_and_nothing_else() -> None:
    # (pytest rewrites plugin packages and adds "@py_*" names: not identifiers, not ours)
    public = {name for name in dir(aioplatform) if name.isidentifier() and not name.startswith("_")}
    modules = {"core", "testing", "saltant", "astakos", "flowserv", "agave", "cli"}
    assert set(aioplatform.__all__) == (public - modules) | {"__version__"}
    for name in aioplatform.__all__:
        assert getattr(aioplatform, name) is not None
