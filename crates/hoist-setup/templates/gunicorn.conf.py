# gunicorn config for {{ app }}, written by `hoist setup`. Restart with
# restart = "gunicorn-hup" and pidfile = {{ pidfile | py }}.
#
# hoist reloads it warm: TTIN adds new workers while the old ones serve, TTOU retires the old
# ones once the new ones have loaded the app (a change to this file needs a master restart, or a
# SIGHUP). There is no preload: each new worker imports hoist_loader, which loads the release
# `current` points at by its resolved path, so old workers never read new files.
wsgi_app = "hoist_loader:application"
pythonpath = {{ config_dir | py }}
chdir = {{ config_dir | py }}
bind = "127.0.0.1:{{ port }}"
workers = {{ workers }}
pidfile = {{ pidfile | py }}
preload_app = False
graceful_timeout = 30
accesslog = {{ (log_dir ~ "/gunicorn-access.log") | py }}
errorlog = {{ (log_dir ~ "/gunicorn-error.log") | py }}
# Workers' stderr (hoist's loader says there why a release failed to load) goes to errorlog.
capture_output = True
# gunicorn 24+: one control socket per app, not the shared default in $HOME.
control_socket = {{ (run_dir ~ "/gunicorn.ctl") | py }}


def when_ready(server):
    """The master forks new workers without a pause between them. gunicorn sleeps up to 0.1 s
    after each worker it forks (Arbiter.spawn_workers); hoist's warm reload adds its new
    workers one TTIN at a time, so each pause would hold back the next new worker, on every
    deploy (about 0.05 s a worker on average)."""

    def spawn_workers():
        for _ in range(server.num_workers - len(server.WORKERS)):
            server.spawn_worker()

    server.spawn_workers = spawn_workers
