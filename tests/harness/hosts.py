"""Simulated hosts: each gets its own 127.0.0.x address and its own directory; its proxy is a
real haproxy or nginx process started and reloaded by the role through these commands (no
systemd here), never touching the system's own configuration."""

from __future__ import annotations

from pathlib import Path

NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"


def _alive(pidfile: Path) -> str:
    return f"sh -c 'kill -0 \"$(cat {pidfile} 2>/dev/null)\" 2>/dev/null'"


def haproxy_service(host_dir: Path, prefix: str) -> dict[str, str]:
    """Vars for a master-worker HAProxy; USR2 makes the master reload gracefully."""
    host_dir.mkdir(parents=True, exist_ok=True)
    pidfile, config = host_dir / "haproxy.pid", host_dir / "haproxy.cfg"
    return {
        f"{prefix}_config_path": str(config),
        f"{prefix}_validate_command": f"haproxy -c -f {config}",
        f"{prefix}_status_command": _alive(pidfile),
        f"{prefix}_start_command": f"haproxy -W -D -f {config} -p {pidfile}",
        f"{prefix}_reload_command": f"sh -c 'kill -USR2 \"$(cat {pidfile})\"'",
    }


def nginx_service(host_dir: Path, prefix: str, fragment: str = "certops.conf",
                  stream: bool = False) -> dict[str, str]:
    """Vars for an nginx with its own main config that includes the role's fragment, the way
    Debian's nginx.conf includes conf.d/*.conf. ``stream`` puts the fragment in stream{}."""
    root = host_dir / "nginx"
    for sub in ("http.d", "stream.d", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    main = root / "nginx.conf"
    pidfile = root / "nginx.pid"
    lines = []
    if stream:
        lines.append(f"load_module {NGINX_STREAM_MODULE};")
    # Workers as root: the tests' directories are private (0700) to other users.
    lines += ["user root;", f"pid {pidfile};", f"error_log {root / 'error.log'} warn;", "worker_processes 1;",
              "events { worker_connections 512; }",
              "http {", "    access_log off;",
              *(f"    {kind}_temp_path {root / 'tmp' / kind};" for kind in
                ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")),
              f"    include {root / 'http.d'}/*.conf;", "}"]
    if stream:
        lines += ["stream {", f"    include {root / 'stream.d'}/*.conf;", "}"]
    main.write_text("\n".join(lines) + "\n")
    where = "stream.d" if stream else "http.d"
    base = f"nginx -c {main} -p {root}/"
    extra = {f"{prefix}_http_config_path": str(root / "http.d" / fragment)} if stream else {}
    return {
        **extra,
        f"{prefix}_config_path": str(root / where / fragment),
        f"{prefix}_validate_command": f"{base} -t -q",
        f"{prefix}_status_command": _alive(pidfile),
        f"{prefix}_start_command": base,
        f"{prefix}_reload_command": f"{base} -s reload",
    }


def pull_agent_service(pull_dir: Path, binary: str) -> dict[str, str]:
    """The pull agent's status and restart commands for a host without systemd (what the role's
    systemd unit does on a real host: stop the old agent, remove its last rendering
    (ExecStartPre), run ``<binary> agent -config=<dir>/agent.hcl``). The agent writes its pid
    file itself."""
    pidfile, config, log = pull_dir / "agent.pid", pull_dir / "agent.hcl", pull_dir / "agent.log"
    rendered = pull_dir / "rendered" / "bundles.json"
    return {
        "status_command": _alive(pidfile),
        "restart_command": (
            f"sh -c 'old=\"$(cat {pidfile} 2>/dev/null)\"; kill \"$old\" 2>/dev/null; n=0; "
            f"while [ -n \"$old\" ] && kill -0 \"$old\" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.05; n=$((n+1)); done; "
            f"rm -f {rendered}; setsid {binary} agent -config={config} >>{log} 2>&1 </dev/null &'"),
    }
