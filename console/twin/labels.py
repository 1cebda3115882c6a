"""How a managed Kubernetes labels its GPU nodes: the twin's `--labels` choice of conventions.

A real cluster names a node's group in its provider's label (GKE, EKS, Karpenter), its region in
`topology.kubernetes.io/region`, and NVIDIA GPU feature discovery writes the GPU's product name
(`NVIDIA-H100-80GB-HBM3`), count and memory. The twin labels its nodes, and writes its pods' node
selectors, the way the chosen convention does, so the console and the rules are tried on labels they did
not choose."""

from __future__ import annotations

from dataclasses import dataclass

from console.catalog.model import NodeLabels, Pool

REGION = "topology.kubernetes.io/region"
# GPU feature discovery's product label values for the catalog's usual model names; others read NVIDIA-<name>.
PRODUCTS = {
    "H100": "NVIDIA-H100-80GB-HBM3",
    "H200": "NVIDIA-H200",
    "A100": "NVIDIA-A100-SXM4-80GB",
    "A10": "NVIDIA-A10",
    "L4": "NVIDIA-L4",
    "L40S": "NVIDIA-L40S",
    "T4": "Tesla-T4",
    "V100": "Tesla-V100-SXM2-16GB",
    "P100": "Tesla-P100-PCIE-16GB",
}


@dataclass(frozen=True)
class Convention:
    name: str
    pool_label: str  # the node label that carries the node group's (the pool's) name
    products: bool  # GPU feature discovery's product names, not the catalog's model names
    extra: tuple[tuple[str, str], ...] = ()  # constant labels the provider adds to every node

    def node_labels(self) -> NodeLabels:
        """The catalog's `node_labels:` for a cluster labelled this way."""
        return NodeLabels(pool=self.pool_label)

    def selector(self, pool: Pool, region: str) -> dict[str, str]:
        """A pod's node selector for a pool in a region."""
        return {**pool.selector(self.node_labels()), REGION: region}

    def product(self, model: str) -> str:
        return PRODUCTS.get(model, f"NVIDIA-{model}") if self.products else model

    def labels(self, pool: Pool, region: str, name: str, model: str | None, gpus: int) -> dict[str, str]:
        """Every label of a node of `pool` in `region`."""
        labels = {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            REGION: region,
            "topology.kubernetes.io/zone": f"{region}-a",
            **dict(self.extra),
            **self.selector(pool, region),
        }
        if model:
            labels |= {"nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": self.product(model)}
            labels["nvidia.com/gpu.count"] = str(gpus)
            if self.name == "gke":
                labels["cloud.google.com/gke-accelerator"] = f"nvidia-{model.lower()}"
        if pool.mig:
            labels |= {"nvidia.com/mig.config": f"all-{pool.mig.profile}", "nvidia.com/mig.strategy": "mixed"}
        return labels


CONVENTIONS = {
    "gpuops": Convention("gpuops", "gpuops.io/pool", products=False),
    "gke": Convention("gke", "cloud.google.com/gke-nodepool", True, (("cloud.google.com/gke-os-distribution", "cos"),)),
    "eks": Convention("eks", "eks.amazonaws.com/nodegroup", True, (("eks.amazonaws.com/capacityType", "ON_DEMAND"),)),
    "karpenter": Convention("karpenter", "karpenter.sh/nodepool", True, (("karpenter.sh/capacity-type", "on-demand"),)),
}
