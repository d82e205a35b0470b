"""ollama_claude.context: the deploy file pyinfra runs with exec() is known to inspect as a module's file."""

from __future__ import annotations

import inspect
import sys

from ollama_claude.context import EXEC_FILE_MODULE, name_exec_file


def test_frames_of_an_exec_file_resolve_without_walking_every_module(tmp_path, monkeypatch):
    """pyinfra's operation ordering calls inspect.getmodule for each frame on the stack, per operation."""
    deploy = tmp_path / "my_deploy.py"
    deploy.write_text("import inspect\nframe = inspect.currentframe()\n")
    namespace: dict = {"__file__": str(deploy)}
    exec(compile(deploy.read_text(), str(deploy), "exec"), namespace)  # noqa: S102 - as pyinfra_cli.util.exec_file does
    frame = namespace["frame"]
    walked = []
    real_modules = sys.modules

    class Watched(dict):
        def copy(self):  # inspect.getmodule's walk over every module starts with sys.modules.copy()
            walked.append(True)
            return real_modules.copy()

    name_exec_file(str(deploy))
    assert sys.modules[EXEC_FILE_MODULE + str(deploy)].__file__ == str(deploy)
    assert inspect.getmodule(frame, str(deploy)).__name__ == EXEC_FILE_MODULE + str(deploy)  # learnt once
    monkeypatch.setattr(sys, "modules", Watched(real_modules))
    for _ in range(3):
        assert inspect.getmodule(frame, str(deploy)) is not None
    assert walked == []
    name_exec_file(str(deploy))  # again: nothing new
    name_exec_file(None)
    assert [name for name in real_modules if name.startswith(EXEC_FILE_MODULE)].count(EXEC_FILE_MODULE + str(deploy)) == 1
