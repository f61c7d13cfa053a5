"""A HaloITSM-compatible HTTP server for demos and tests, faithful to the API's known quirks."""

from halo_pipeline.simulator.config import SimulatorConfig
from halo_pipeline.simulator.dataset import Dataset, generate_dataset
from halo_pipeline.simulator.faults import Fault
from halo_pipeline.simulator.simulator import Simulator

__all__ = ["Dataset", "Fault", "Simulator", "SimulatorConfig", "generate_dataset"]
