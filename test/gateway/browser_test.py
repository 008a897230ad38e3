#!/usr/bin/env python3
"""End-to-end browser test of redcoro-gateway and its page (examples/gateway/page.html).

Starts a private redis-server and two gateways (gw1, gw2) on it, opens the page in two headless
Chromium sessions (alice on gw1, bob on gw2, both in room "lobby") and checks that:
  * each page shows "connected to <its gateway>", and alice's member list shows alice and bob;
  * a message typed by alice reaches bob through Redis, and one typed by bob reaches alice;
  * a message holding <script> and <img onerror> markup shows as literal text: .text's
    textContent is exactly the string, no <script>/<img> element appears, window.__pwned stays
    undefined; no message is shown twice (history and live messages de-duplicated by id);
  * a WebSocket upgrade with an allowed Origin gets 101, one with Origin http://evil.example 403.
Screenshots go to ARTIFACTS/gateway-page-a.png and gateway-page-b.png, logs to ARTIFACTS/*.log.

Usage: browser_test.py --gateway PATH --redis-server PATH --artifacts DIR
Exit status: 0 passed, 1 failed, 77 skipped (selenium, chromium or chromedriver missing).
"""
import argparse, base64, os, random, shutil, socket, subprocess, sys, tempfile, time, traceback
import urllib.request

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
try:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    # Debian's python3-selenium lives in the system interpreter; PATH may name another python3.
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != \
            os.path.realpath("/usr/bin/python3") and not os.environ.get("BROWSER_TEST_REEXEC"):
        os.environ["BROWSER_TEST_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    print("SKIPPED: python3-selenium is not installed")
    sys.exit(77)

WAIT = 20  # seconds, for every browser-side condition
XSS = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
MESSAGES_JS = """return Array.from(document.querySelectorAll('#messages li.msg')).map(li => [
    li.dataset.id, (li.querySelector('.user') || {}).textContent, (li.querySelector('.text') || {}).textContent]);"""


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)
    print("ok:", what, flush=True)


def free_ports(n):
    """n distinct loopback ports in 20000-32000 (below the ephemeral range) that can be bound now."""
    ports = []
    while len(ports) < n:
        p = random.randint(20000, 32000)
        if p in ports:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                continue
        ports.append(p)
    return ports


def wait_until(what, pred, timeout, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise Failure(f"{what}: the process exited with status {proc.returncode}")
        try:
            if pred():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise Failure(f"{what}: not within {timeout} s")


def redis_pings(port):
    with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        s.sendall(b"PING\r\n")
        return s.recv(64).startswith(b"+PONG")


def http_ok(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
        return r.status == 200


def upgrade_status(port, origin):
    """Status code of a hand-written WebSocket upgrade to /ws?user=mallory with this Origin."""
    key = base64.b64encode(os.urandom(16)).decode()
    req = (f"GET /ws?user=mallory HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
           f"Origin: {origin}\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(req.encode())
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    line = data.split(b"\r\n", 1)[0].decode(errors="replace")
    parts = line.split()
    if len(parts) < 2 or not parts[1].isdigit():
        raise Failure(f"upgrade with Origin {origin}: bad status line {line!r}")
    return int(parts[1])


def browser():
    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,800"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    d.set_window_size(1200, 800)
    d.set_page_load_timeout(WAIT)
    d.set_script_timeout(WAIT)
    return d


def wait_js(d, what, fn):
    WebDriverWait(d, WAIT, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,)).until(
        fn, message=f"{what} (waited {WAIT} s)")
    print("ok:", what, flush=True)


def send(d, text):
    d.find_element(By.ID, "text").send_keys(text)
    d.find_element(By.ID, "send").click()
    wait_js(d, "the input is cleared after sending", lambda d: d.find_element(By.ID, "text").get_attribute("value") == "")


def has_message(user, text):
    return lambda d: [user, text] in [m[1:] for m in d.execute_script(MESSAGES_JS)]


def run(args, tmp, procs, drivers):
    for path in (args.gateway, args.redis_server):
        if not os.access(path, os.X_OK):
            raise Failure(f"not an executable: {path}")
    rp, g1, g2, m1, m2 = free_ports(5)
    def start(name, cmd):
        with open(os.path.join(args.artifacts, f"{name}.log"), "wb") as log:
            procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
        return procs[name]
    redis = start("redis", [args.redis_server, "--port", str(rp), "--bind", "127.0.0.1", "--save", "",
                            "--appendonly", "no", "--dir", tmp])
    wait_until("redis-server answers PING", lambda: redis_pings(rp), 10, redis)
    for gw, port, metrics in (("gw1", g1, m1), ("gw2", g2, m2)):
        p = start(f"gateway-{gw}", [args.gateway, "--redis", f"redis://127.0.0.1:{rp}", "--port", str(port),
                                    "--metrics-port", str(metrics), "--id", gw,
                                    "--allow-origin", f"http://127.0.0.1:{g1}",
                                    "--allow-origin", f"http://127.0.0.1:{g2}"])
        wait_until(f"{gw} serves GET / with 200", lambda: http_ok(port), 20, p)
    print(f"ok: redis on {rp}, gw1 on {g1}, gw2 on {g2}", flush=True)

    a = drivers["a"] = browser()
    b = drivers["b"] = browser()
    a.get(f"http://127.0.0.1:{g1}/?user=alice&room=lobby")
    b.get(f"http://127.0.0.1:{g2}/?user=bob&room=lobby")
    for d, gw in ((a, "gw1"), (b, "gw2")):
        wait_js(d, f"page shows 'connected to {gw}'", lambda d: f"connected to {gw}" in d.find_element(By.ID, "status").text)
    members = lambda d: set(d.execute_script("return [...document.querySelectorAll('#members li')].map(e => e.textContent)"))
    wait_js(a, "alice's member list shows alice and bob", lambda d: {"alice", "bob"} <= members(d))
    wait_js(b, "bob's member list shows alice and bob", lambda d: {"alice", "bob"} <= members(d))

    hello = f"hello from alice {random.randint(0, 1 << 30)}"
    send(a, hello)
    wait_js(b, "alice's message reaches bob (gw1 -> gw2)", has_message("alice", hello))
    reply = f"hi alice, bob here {random.randint(0, 1 << 30)}"
    send(b, reply)
    wait_js(a, "bob's message reaches alice (gw2 -> gw1)", has_message("bob", reply))

    send(a, XSS)
    for d, who in ((b, "bob"), (a, "alice")):
        wait_js(d, f"the markup message reaches {who}", lambda d: len(d.execute_script(MESSAGES_JS)) >= 3)
    time.sleep(1)  # give an injected <img onerror> the time to fire
    for d, who in ((a, "alice"), (b, "bob")):
        last = d.execute_script(MESSAGES_JS)[-1]
        check(last[1:] == ["alice", XSS], f"{who}: .text textContent is exactly the markup string ({last[2]!r})")
        check(d.execute_script("return typeof window.__pwned") == "undefined", f"{who}: window.__pwned is undefined")
        check(d.find_elements(By.CSS_SELECTOR, "#messages script, #messages img") == [],
              f"{who}: #messages holds no <script> or <img> element")
        ids = [m[0] for m in d.execute_script(MESSAGES_JS)]
        check(len(ids) == 3 and len(set(ids)) == 3, f"{who}: 3 messages, no id shown twice ({ids})")
    screenshots(args, drivers)

    check(upgrade_status(g1, f"http://127.0.0.1:{g2}") == 101, "upgrade with an allowed Origin gets 101")
    check(upgrade_status(g1, "http://evil.example") == 403, "upgrade with Origin http://evil.example gets 403")


def screenshots(args, drivers):
    for name, d in drivers.items():
        path = os.path.join(args.artifacts, f"gateway-page-{name}.png")
        d.save_screenshot(path)
        print("saved", path, flush=True)


def tail(path, n=40):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError as e:
        return f"({e})\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--redis-server", required=True)
    ap.add_argument("--artifacts", required=True)
    args = ap.parse_args()
    # Absolute paths (the processes run in a temp dir); a bare name such as "redis-server" is looked up on PATH.
    where = lambda p: os.path.abspath(p) if os.sep in p else (shutil.which(p) or p)
    args.gateway, args.redis_server = where(args.gateway), where(args.redis_server)
    args.artifacts = os.path.abspath(args.artifacts)
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            print(f"SKIPPED: {path} is missing")
            return 77
    os.makedirs(args.artifacts, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="redcoro-gateway-test-")
    procs, drivers, status = {}, {}, 1
    try:
        run(args, tmp, procs, drivers)
        status = 0
    except Exception as e:
        print(f"FAILED: {e}" if isinstance(e, Failure) else f"FAILED: {type(e).__name__}: {e}".rstrip(), flush=True)
        if not isinstance(e, (Failure, TimeoutException)):
            traceback.print_exc()
        for name, d in drivers.items():
            try:
                print(f"--- page {name}: status {d.find_element(By.ID, 'status').text!r}, "
                      f"error {d.find_element(By.ID, 'error').text!r}, console:")
                for entry in d.get_log("browser")[-20:]:
                    print("   ", entry.get("level"), entry.get("message"))
            except Exception as e2:
                print(f"--- page {name}: ({e2})")
        try:
            screenshots(args, drivers)
        except Exception:
            pass
    finally:
        for d in drivers.values():
            try:
                d.quit()
            except Exception:
                pass
        for name, p in reversed(list(procs.items())):
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                print(f"note: {name} did not stop within 5 s of SIGTERM; killed")
                p.kill()
                p.wait(5)
        shutil.rmtree(tmp, ignore_errors=True)
    if status:
        for name in procs:
            if name.startswith("gateway-"):
                print(f"--- last 40 lines of {name}.log:\n{tail(os.path.join(args.artifacts, name + '.log'))}", end="")
    print("PASSED" if status == 0 else "FAILED", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
