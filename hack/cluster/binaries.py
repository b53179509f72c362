"""What hack/cluster/build-binaries.sh built for the local control plane, and where: its
NAME=DIR lines read into paths, and the pinned versions (versions.env)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass
class Binaries:
    kubernetes: Path
    etcd: Path
    kwok: Path
    training_operator: Path
    clients: Path
    seaweedfs: Path

    @classmethod
    def build(cls, paths_only: bool = False) -> Binaries:
        """Run build-binaries.sh (a no-op when all is cached) and read its NAME=DIR lines;
        with paths_only, where they would be, building nothing."""
        command = [str(HERE / "build-binaries.sh"), *(["--paths"] if paths_only else [])]
        out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
        dirs = dict(line.split("=", 1) for line in out.split() if "=" in line)
        return cls(
            kubernetes=Path(dirs["KUBERNETES_BIN"]),
            etcd=Path(dirs["ETCD_BIN"]),
            kwok=Path(dirs["KWOK_BIN"]),
            training_operator=Path(dirs["TRAINING_OPERATOR_BIN"]),
            clients=Path(dirs["CLIENTS_BIN"]),
            seaweedfs=Path(dirs["SEAWEEDFS_BIN"]),
        )

    @property
    def kubectl(self) -> str:
        return str(self.clients / "kubectl")


def versions() -> dict[str, str]:
    lines = (HERE / "versions.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
