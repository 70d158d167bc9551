"""Starting the Streamlit review app as a child process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# server.py serves app.py's pages with a Content-Security-Policy and other headers.
APP = Path(__file__).with_name("server.py")


def run_streamlit(port: int, api_url: str, headless: bool = True) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PRELABEL_API_URL=api_url)
    command = [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
        "--server.headless", "true" if headless else "false",
        "--browser.gatherUsageStats", "false",
        "--global.developmentMode", "false",
        # A reviewer's screen: no Deploy button or developer menu, no file watching.
        "--client.toolbarMode", "viewer",
        "--server.fileWatcherType", "none",
    ]  # fmt: skip
    return subprocess.Popen(command, env=env)
