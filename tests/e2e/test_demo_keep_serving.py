"""`aftercare demo --keep-serving` leaves the console up on the demo's data, with a user it prints."""

import re
import signal
import subprocess
import sys

import httpx

from ..runtime.test_processes import first_line


def test_keep_serving_prints_a_console_login_that_works_and_stops_on_sigterm(tmp_path):
    demo = subprocess.Popen(
        [sys.executable, "-m", "aftercare", "demo", "--dir", str(tmp_path / "demo"), "--orders", "3", "--days", "2",
         "--keep-serving"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={"COLUMNS": "200", "PATH": ""},
    )  # fmt: skip
    try:
        line = first_line(demo, "The console is at", timeout=90)
        url, user, password = re.search(r"at (\S+/console): user (\S+), password (\S+)\.", line).groups()
        with httpx.Client(timeout=10, follow_redirects=True) as client:
            login = client.get(f"{url}/login")
            token = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)
            home = client.post(f"{url}/login", data={"name": user, "password": password, "csrf": token})
            assert home.status_code == 200 and "demo-shopify" in home.text, home.text[:500]
    finally:
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=30)
    assert demo.returncode == 0
