"""The command line as a shell user meets it."""

import subprocess
import sys

from tests.conftest import REPO, TELCO


def test_output_cut_short_by_a_pipe_ends_quietly(home):
    # given a reader that has already gone away (like `| head -0`) before the command prints
    script = f"import churnguard, sys; sys.exit(churnguard.main(['ingest', {str(TELCO)!r}, '--json']))"
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={"CHURNGUARD_HOME": str(home), "PATH": "/usr/bin:/bin"})
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    # when the command writes its report
    stderr = proc.stderr.read().decode()
    code = proc.wait(timeout=120)
    # then it ends quietly with the shell's code for SIGPIPE, and the batch is still stored
    assert "Traceback" not in stderr
    assert code == 141
    status = subprocess.run([sys.executable, "-c", "import churnguard, sys; sys.exit(churnguard.main(['status', '--json']))"],
                            cwd=REPO, capture_output=True, text=True, env={"CHURNGUARD_HOME": str(home), "PATH": "/usr/bin:/bin"})
    assert '"batches": 1' in status.stdout or '"batches":1' in status.stdout.replace(" ", "")
