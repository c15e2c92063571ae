"""Debian's nginx for system tests: the configuration the README documents
for a local backend (signed downloads, signed PUT uploads into the upload
area), and starting and stopping it on a loopback port.

Not a test itself (scripts/test.sh runs only test_*.py)."""

import ctypes
import os
import signal
import socket
import subprocess
import time

NGINX = "/usr/sbin/nginx"


def die_with_parent():
    """In the child before exec: SIGTERM when this process dies, so that even
    a killed test leaves no process behind (PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, what, timeout=30):
    """Waits until proc listens on port; raises if it exits or never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("%s did not listen on %d within %d s" % (what, port, timeout))


def stop_process(proc):
    if proc is not None and proc.poll() is None:
        proc.terminate()  # SIGTERM: nginx's fast shutdown, workers too
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def file_locations(root, secret, max_size, prefix="/files"):
    """The README's locations for a local backend at root published under
    prefix: PUT uploads into the upload area (the method inside the MAC, at
    most max_size bytes), GET downloads."""
    return f"""
        location {prefix}/.so-uploads/ {{
            limit_except PUT {{ deny all; }}
            secure_link $arg_md5,$arg_expires;
            secure_link_md5 "$secure_link_expires$uri$request_method {secret}";
            if ($secure_link != "1") {{ return 403; }}
            alias {root}/.so-uploads/;
            dav_methods PUT;
            dav_access user:rw group:r all:r;
            client_max_body_size {max_size};
        }}
        location {prefix}/ {{
            limit_except GET {{ deny all; }}
            secure_link $arg_md5,$arg_expires;
            secure_link_md5 "$secure_link_expires$uri {secret}";
            if ($secure_link != "1") {{ return 403; }}
            alias {root}/;
        }}"""


def start(d, port, locations, group=None):
    """Starts nginx with its files in directory d, listening on
    127.0.0.1:port with the given locations; as www-data in group when
    given. Returns the process once it listens."""
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write((f"user www-data {group};\n" if group else "") + f"""
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
{locations}
    }}
}}
""")
    with open(os.path.join(d, "stderr.log"), "wb") as log:
        proc = subprocess.Popen([NGINX, "-c", conf, "-p", d + "/", "-e", d + "/error.log", "-g", "daemon off;"],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=die_with_parent)
    try:
        wait_port(port, proc, "nginx")
    except RuntimeError:
        stop_process(proc)
        raise
    return proc
