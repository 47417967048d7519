"""hoist's loader, written by `hoist setup` for {{ app }}. Each NEW worker imports it.

It resolves {{ root }}/current once, to the release it points at now, and serves that release
by its resolved path: the release directory goes first on sys.path (then its folders of
hoist.toml's `python_path`, such as `src`), its virtualenv's packages ahead of the server's,
and the worker changes into it. A worker started before a switch keeps
the release it loaded; only workers started after a reload (gunicorn TTIN, uWSGI chain reload)
load the new one. Once the app is imported (or failed to), the worker writes a file named
after its pid into {{ ready_dir }}: its start time and the release. hoist waits for those files
(and the workers' directories) to know when every new worker has loaded the release.

Before the import, the worker exports the app's variables from {{ root }}/shared/env (written by
`hoist deploy` from hoist.toml's [env], one `NAME=value` line each in POSIX shell quoting), so a
graceful reload gives the workers the values of the last deploy.

If the release fails to import, the worker serves 503 with the reason in the server's log, so
hoist's health check fails and hoist switches back; the server itself stays up. During a warm
reload (hoist's `warm-target` file is in {{ ready_dir }}), a worker that fails to import never
serves at all: its ready file says `failed:<release>` with the reason on the next line, and it
waits, without accepting, until it is told to stop, while the old workers keep serving.
"""

import glob
import importlib
import os
import shlex
import signal
import site
import sys
import time
import traceback

ROOT = {{ root | py }}
ENTRY = {{ entry | py }}
READY_DIR = {{ ready_dir | py }}
PYTHON_PATH = {{ python_path | py }}


_RESOLVED = os.path.realpath(os.path.join(ROOT, "current"))


def _export_env():
    """Exports <ROOT>/shared/env's variables (no file: nothing to do). A line that does not
    parse stops the load: a worker must not serve without the configuration it was given."""
    path = os.path.join(ROOT, "shared", "env")
    try:
        with open(path, encoding="utf-8") as env:
            lines = env.read().splitlines()
    except FileNotFoundError:
        return
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        words = shlex.split(value) if sep else None
        if not sep or not name.isidentifier() or words is None or len(words) > 1:
            raise RuntimeError(f"{path}:{number}: not a NAME=value line")
        os.environ[name] = words[0] if words else ""


def _load():
    _export_env()
    release = _RESOLVED
    if not os.path.isfile(os.path.join(release, "RELEASE.json")):
        raise RuntimeError(f"{ROOT}/current does not point at a release (resolved: {release})")
    os.chdir(release)
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    first = [release] + [os.path.join(release, folder) for folder in PYTHON_PATH]
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


def _say_ready(release, reason=None):
    """Writes <READY_DIR>/<pid>: this worker's start time and the release it loaded (or
    `failed:<release>` and the reason); removes the files of workers that are gone. Never fails
    the worker."""
    try:
        os.makedirs(READY_DIR, exist_ok=True)
        with open("/proc/self/stat") as stat:
            started = stat.read().rsplit(")", 1)[1].split()[19]
        pid = os.getpid()
        for name in os.listdir(READY_DIR):
            if name.isdigit() and not os.path.exists(f"/proc/{name}"):
                try:
                    os.unlink(os.path.join(READY_DIR, name))
                except OSError:
                    pass
        partial = os.path.join(READY_DIR, f".{pid}.tmp")
        with open(partial, "w") as ready:
            if reason is None:
                ready.write(f"{started} {release}\n")
            else:
                last = reason.strip().splitlines()[-1] if reason.strip() else "unknown error"
                ready.write(f"{started} failed:{release}\n{last}\n")
        os.replace(partial, os.path.join(READY_DIR, str(pid)))
        # Tells hoist that the workers run a loader that keeps out of a warm reload when the
        # release fails to import, so the import check may be left to the new workers.
        marker = os.path.join(READY_DIR, "loader")
        if not os.path.exists(marker):
            with open(partial, "w") as version:
                version.write("warm-reload 1\n")
            os.replace(partial, marker)
    except Exception as error:  # noqa: BLE001 - reporting must never stop a worker
        sys.stderr.write(f"hoist loader: cannot write the ready file in {READY_DIR}: {error}\n")


if RELEASE is None and os.path.exists(os.path.join(READY_DIR, "warm-target")):
    # A warm reload: the old workers still serve, so this one must not take a request.
    _say_ready(_RESOLVED, _REASON)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    while True:
        time.sleep(3600)

_say_ready(_RESOLVED)
