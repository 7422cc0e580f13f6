"""BrainScript: CNTK's network-description language, model editing and CloneFunction.

Public API:

* :func:`parse` / :func:`dump_tree`: the parser and CNTK's parse-tree test format;
* :func:`build_from_text`, :func:`build_from_file`, :func:`build_from_config`: evaluate a
  BrainScriptNetworkBuilder block into a :class:`~netsurgeon.graph.Network`;
* :func:`clone_function`: ``BS.Network.CloneFunction`` for Python, on any network.

Importing the package attaches the registry's ``bs`` layer (:data:`BS_LIBRARY`: which core
library functions create each op).
"""

from netsurgeon.lang.brainscript.clone import CloneFunction, clone_function
from netsurgeon.lang.brainscript.host import build_from_config, build_from_file, build_from_text
from netsurgeon.lang.brainscript.library import BS_LIBRARY, LibraryEntry
from netsurgeon.lang.brainscript.parser import dump_tree, parse

__all__ = ["parse", "dump_tree", "build_from_text", "build_from_file", "build_from_config",
           "clone_function", "CloneFunction", "BS_LIBRARY", "LibraryEntry"]
