"""hoist's loader, written by `hoist setup` for {{ app }}. Each NEW worker imports it.

It resolves {{ root }}/current once, to the release it points at now, and serves that release
by its resolved path: the release directory goes first on sys.path, its virtualenv's packages
ahead of the server's, and the worker changes into it. A worker started before a switch keeps
the release it loaded; only workers started after a reload (gunicorn HUP, uWSGI chain reload)
load the new one. hoist reads the workers' directories to know when every one runs it.

If the release fails to import, the worker serves 503 with the reason in the server's log, so
hoist's health check fails and hoist switches back; the server itself stays up.
"""

import glob
import importlib
import os
import site
import sys
import traceback

ROOT = {{ root | py }}
ENTRY = {{ entry | py }}


def _load():
    release = os.path.realpath(os.path.join(ROOT, "current"))
    if not os.path.isfile(os.path.join(release, "RELEASE.json")):
        raise RuntimeError(f"{ROOT}/current does not point at a release (resolved: {release})")
    os.chdir(release)
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    first = [release]
    for packages in glob.glob(os.path.join(release, ".venv", "lib", version, "site-packages")):
        known = set(sys.path)
        site.addsitedir(packages)
        first += [p for p in sys.path if p not in known]
    sys.path[:] = first + [p for p in sys.path if p not in first]
    module, _, attribute = ENTRY.partition(":")
    target = importlib.import_module(module)
    attribute = attribute or "application"
    if attribute.endswith("()"):
        return release, getattr(target, attribute[:-2])()
    return release, getattr(target, attribute)


try:
    RELEASE, application = _load()
except Exception:  # noqa: BLE001 - any failure must leave a worker that answers 503
    RELEASE = None
    _REASON = traceback.format_exc()
    sys.stderr.write(f"hoist loader: the release of {ROOT}/current failed to load:\n{_REASON}")
    sys.stderr.flush()

    def application(environ, start_response):
        start_response("503 Service Unavailable", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"the release failed to load; see the app server's error log\n"]
