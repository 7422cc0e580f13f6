"""``import netsurgeon.mel``: run MEL scripts and edit models from Python.

A short alias of :mod:`netsurgeon.lang.mel`::

    import netsurgeon.mel as mel
    models = mel.run("add_layer.mel", variables={"currModel": "in.nsm", "newModel": "out.nsm"})
    ed = mel.Editor(); ed.load("in.nsm"); ed.copy("L3.*", "L4.*"); ed.save("out.nsm")
"""

from netsurgeon.lang.mel import COMMANDS, PROPERTIES, Editor, Interpreter, Model, RunResult, run

__all__ = ["run", "Editor", "Model", "Interpreter", "RunResult", "COMMANDS", "PROPERTIES"]
