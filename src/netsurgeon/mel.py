"""``import netsurgeon.mel``: run MEL scripts and edit models from Python.

The same module object as :mod:`netsurgeon.lang.mel` (this file replaces itself with it in
``sys.modules``), so ``netsurgeon.mel``, ``import netsurgeon.mel`` and ``netsurgeon.lang.mel``
are one module::

    import netsurgeon.mel as mel
    models = mel.run("add_layer.mel", variables={"currModel": "in.nsm", "newModel": "out.nsm"})
    ed = mel.Editor(); ed.load("in.nsm"); ed.copy("L3.*", "L4.*"); ed.save("out.nsm")
"""

import sys
import typing

from netsurgeon.lang import mel as _mel

if typing.TYPE_CHECKING:  # what type checkers see of `import netsurgeon.mel`
    from netsurgeon.lang.mel import *  # noqa: F403

sys.modules[__name__] = _mel
