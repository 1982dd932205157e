"""The optical-flow substrate: flow extraction and caching, moving-region proposals, per-region
descriptors (flow patches, velocity, pose). The ``flow_nf`` method built on it (region features,
Glow / GMM / pose densities, training and scoring) is :mod:`vadlib.methods.flow_nf`."""

from vadlib.flow.descriptors import flow_patch, load_pose, normalize_pose, top_magnitude, velocity_descriptor
from vadlib.flow.optical import FlowCache, FlowConfig, compute_dataset_flow, compute_flow, load_flow, read_gray_video
from vadlib.flow.regions import RegionConfig, propose_regions

__all__ = ["FlowCache", "FlowConfig", "RegionConfig", "compute_dataset_flow", "compute_flow", "flow_patch",
           "load_flow", "load_pose", "normalize_pose", "propose_regions", "read_gray_video", "top_magnitude",
           "velocity_descriptor"]
