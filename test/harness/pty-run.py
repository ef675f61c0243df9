#!/usr/bin/env python3
"""Runs a program on a fresh pseudo-terminal and answers its password prompt.

    pty-run.py '{"argv": [...], "env": {...}, "answer": "pw" | null,
                 "signal": "SIGTERM" | null, "timeout": 20}'

Waits for "Password:" on the terminal, notes whether echo is off at that moment,
then types answer + Enter (or sends the signal to the program).  Reads the terminal
until the program exits, and prints JSON: output (everything the terminal showed),
exit / signal, prompted, echoWhilePrompting, echoAfter (the terminal's ECHO flag
after the program exited: a program must put it back).
"""
import json, os, select, signal, sys, termios, time, fcntl

spec = json.loads(sys.argv[1])
master, slave = os.openpty()
pid = os.fork()
if pid == 0:
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    os.close(master)
    if slave > 2:
        os.close(slave)
    os.execve(spec["argv"][0], spec["argv"], spec["env"])

deadline = time.time() + spec.get("timeout", 20)
output = b""
prompted = False
echo_while = None
status = None


def echo_on():
    return bool(termios.tcgetattr(slave)[3] & termios.ECHO)


while time.time() < deadline:
    r, _, _ = select.select([master], [], [], 0.05)
    if r:
        try:
            data = os.read(master, 65536)
        except OSError:
            data = b""
        output += data
    if not prompted and b"Password:" in output:
        prompted = True
        time.sleep(0.1)  # the prompt is written after raw mode is set; let it settle
        echo_while = echo_on()
        if spec.get("signal"):
            os.kill(pid, getattr(signal, spec["signal"]))
        elif spec.get("answer") is not None:
            os.write(master, spec["answer"].encode() + b"\r")
    if status is None:
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = st
    if status is not None and not r:
        break
else:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)

print(json.dumps({
    "output": output.decode("latin1"),
    "exit": os.WEXITSTATUS(status) if status is not None and os.WIFEXITED(status) else None,
    "signal": os.WTERMSIG(status) if status is not None and os.WIFSIGNALED(status) else None,
    "prompted": prompted,
    "echoWhilePrompting": echo_while,
    "echoAfter": echo_on(),
}))
