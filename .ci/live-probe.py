"""Stand-in appliance for .ci/check-systemd-live: probes the sandbox from inside the unit.

The live check copies the python3 interpreter to /usr/bin/whisper-appliance inside a throwaway
Debian 12 container and this file to /serve, so the unit's own `ExecStart=/usr/bin/whisper-appliance
serve --config ...` (run from /) makes python run /serve: the unit text, ExecPaths= included, stays
exactly as shipped. This program tries what an attacker inside the service would try, records what
the sandbox allowed, then acts like the appliance towards systemd (READY=1, STATUS=, WATCHDOG=1 at
half of $WATCHDOG_USEC, STOPPING=1 on SIGTERM) and serves the record as JSON on 127.0.0.1:5000, or
on the socket systemd passes when WHISPER_APPLIANCE_LISTEN=systemd. Nothing here is the appliance.
"""
import errno, json, mmap, os, signal, socket, socketserver, sys, threading, time
from http.server import BaseHTTPRequestHandler, HTTPServer

def notify(msg):
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendto(msg.encode(), addr)
    s.close()

def probe(name, fn):
    try:
        r = fn()
        return name, "allowed" if r is None else r
    except OSError as e:
        return name, f"refused: {errno.errorcode.get(e.errno, e.errno)}"

def w(path):
    with open(path, "w") as f:
        f.write("x")

def wx():
    m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    m.close()

def exec_from_state():
    p = os.path.join(os.environ["STATE_DIRECTORY"], "dropped")
    with open(p, "w") as f:
        f.write("#!/bin/sh\necho pwned\n")
    os.chmod(p, 0o700)
    pid = os.fork()
    if pid == 0:
        try:
            os.execv(p, [p])
        except OSError as e:
            os._exit(100 + e.errno)
    _, st = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(st)
    if code >= 100:
        raise OSError(code - 100, "exec")
    return f"ran, exit {code}"

def connect_out():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(("192.0.2.1", 80))
    finally:
        s.close()

def connect_to(host, port):
    def f():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.connect((host, port))
        finally:
            s.close()
    return f

def bind(port):
    def f():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.close()
    return f

def caps():
    for line in open("/proc/self/status"):
        if line.startswith(("CapEff", "CapBnd", "CapPrm", "NoNewPrivs", "Seccomp:")):
            yield line.split()[0].rstrip(":"), line.split()[1]

secret_path = os.path.join(os.environ.get("CREDENTIALS_DIRECTORY", "/nonexistent"), "session-secret")
report = dict([
    ("argv", sys.argv),
    ("uid_gid", f"{os.getuid()}:{os.getgid()} groups={os.getgroups()}"),
    ("env", {k: os.environ.get(k) for k in ("STATE_DIRECTORY", "CACHE_DIRECTORY", "CREDENTIALS_DIRECTORY", "WATCHDOG_USEC", "LISTEN_FDS", "LISTEN_FDNAMES", "WHISPER_APPLIANCE_LISTEN")}),
    ("state_dir", oct(os.stat(os.environ["STATE_DIRECTORY"]).st_mode & 0o7777)),
    ("cache_dir", oct(os.stat(os.environ["CACHE_DIRECTORY"]).st_mode & 0o7777)),
    ("credential_len", len(open(secret_path, "rb").read())),
    ("config_len", len(open("/etc/whisper-appliance/config.toml").read())),
    probe("read /etc/whisper-appliance/session-secret", lambda: open("/etc/whisper-appliance/session-secret").read() and None),
    probe("read /etc/whisper-appliance/htpasswd", lambda: open("/etc/whisper-appliance/htpasswd").read() and None),
    probe("write state dir", lambda: w(os.path.join(os.environ["STATE_DIRECTORY"], "probe"))),
    probe("write cache dir", lambda: w(os.path.join(os.environ["CACHE_DIRECTORY"], "probe"))),
    probe("write /etc", lambda: w("/etc/probe")),
    probe("write /usr/share", lambda: w("/usr/share/probe")),
    probe("write /tmp (private)", lambda: w("/tmp/probe")),
    probe("list /home", lambda: os.listdir("/home") and None),
    probe("list /root", lambda: os.listdir("/root") and None),
    probe("exec a file written to the state dir", exec_from_state),
    probe("mmap W+X", wx),
    probe("setpriority (@resources)", lambda: os.setpriority(os.PRIO_PROCESS, 0, 1)),
    probe("sched_setaffinity (@resources)", lambda: os.sched_setaffinity(0, {0})),
    probe("socket AF_NETLINK", lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW).close()),
    probe("socket AF_PACKET", lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW).close()),
    probe("connect 192.0.2.1:80", connect_out),
    probe("bind 127.0.0.1:6000", bind(6000)),
    probe("connect 127.0.0.1:7000 (loopback listener)", connect_to("127.0.0.1", 7000)),
    probe("connect 192.0.2.2:7000 (same listener, non-loopback address)", connect_to("192.0.2.2", 7000)),
    probe("open /dev/sda or vda", lambda: open("/dev/vda", "rb").close()),
    probe("open /dev/null", lambda: open("/dev/null", "rb").close()),
    ("visible pids in /proc", sorted(int(p) for p in os.listdir("/proc") if p.isdigit())),
    ("/proc/sys visible", os.path.exists("/proc/sys/kernel")),
    ("/proc/driver visible", os.path.exists("/proc/driver")),
    ("status", dict(caps())),
])

listen_fds = int(os.environ.get("LISTEN_FDS", "0")) if os.environ.get("LISTEN_PID") == str(os.getpid()) else 0
if os.environ.get("WHISPER_APPLIANCE_LISTEN") == "systemd":
    if listen_fds != 1:
        print("WHISPER_APPLIANCE_LISTEN=systemd but no socket was passed", file=sys.stderr)
        sys.exit(2)
    srv_sock = socket.socket(fileno=3)
    report["listener"] = f"inherited fd 3 {srv_sock.getsockname()}"
else:
    srv_sock = None
    report["listener"] = "bound 127.0.0.1:5000"

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(report, indent=1).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

class InheritedHTTPServer(HTTPServer):
    """Serves on a listening socket passed in by systemd; creates no socket of its own."""
    def __init__(self, sock, handler):
        socketserver.BaseServer.__init__(self, sock.getsockname(), handler)
        self.socket = sock
        self.server_name, self.server_port = sock.getsockname()[:2]

if srv_sock is None:
    httpd = HTTPServer(("127.0.0.1", 5000), H)
else:
    httpd = InheritedHTTPServer(srv_sock, H)

def on_term(*_):
    notify("STOPPING=1\nSTATUS=finishing the running job")
    threading.Thread(target=httpd.shutdown).start()
signal.signal(signal.SIGTERM, on_term)

def watchdog():
    usec = int(os.environ.get("WATCHDOG_USEC", "0"))
    while usec:
        notify("WATCHDOG=1")
        time.sleep(usec / 2e6)
threading.Thread(target=watchdog, daemon=True).start()

print(json.dumps(report), flush=True)
notify("READY=1\nSTATUS=model loaded; listening")
httpd.serve_forever()
sys.exit(0)
