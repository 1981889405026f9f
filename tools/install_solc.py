"""Install the project's solc (tools/solc.js over the npm solc module) where py-solc-x and brownie
look for compilers: <project>/.solcx/solc-v<version>. Idempotent; no download."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    module = ROOT / "node_modules" / "solc"
    pkg = json.loads((module / "package.json").read_text())
    version = pkg["version"]
    target_dir = ROOT / ".solcx"
    target_dir.mkdir(exist_ok=True)
    target = target_dir / f"solc-v{version}"
    text = (ROOT / "tools" / "solc.js").read_text()
    text = text.replace("__SOLC_MODULE__", str(module)).replace("__PROJECT_ROOT__", str(ROOT))
    if not target.exists() or target.read_text() != text:
        target.write_text(text)
    target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    print(f"solc {version} -> {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
