"""MUSE: mutual-consistent graph contrastive learning under missing modalities (Wu et al.,
ICLR 2024).

Follows section 3: patients and modalities are the two node sets of a bipartite graph; an edge
(p, m) exists when patient p has modality m, and carries the modality encoder's embedding of p's
data as its feature, so a missing modality is simply a missing edge (no imputation). Edge-featured
GraphSAGE layers pass messages both ways, e.g. for patients
    h_p <- ReLU(W_a [h_p; mean_{m in N(p)} ReLU(W_m [h_m; e_pm])]),
and symmetrically for modality nodes, whose embeddings therefore summarise every patient of the
graph that has the modality. The mutual-consistent contrastive loss: two views of the graph with
randomly dropped edges (a patient keeps at least one) give two representations of each patient;
an InfoNCE loss pulls the views of the same patient together and pushes other patients apart, so
the representation is consistent whatever subset of modalities is observed.

Simplifications: the graph of one forward pass is the mini-batch (so a patient's prediction also
depends on the other patients of its batch through the modality nodes, as in the paper's
transductive graph); the label-aware part of the contrastive loss is left to the task loss of the
training loop (the model never sees labels); edge embeddings are not updated between layers.
The contrastive term is only computed in training mode, weighted by ``contrastive_weight`` and
reported as ``muse_contrastive``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from amc.baselines.common import (
    BaselineOutput,
    ModalityEncoders,
    make_head,
    resolve_options,
    resolve_present,
)
from amc.model.network import AMCConfig, ModalityInput


class BipartiteLayer(nn.Module):
    """One edge-featured SAGE layer on the patient-modality graph.

    patients (B, D), modalities (M, D), edges (B, M, D), adjacency (B, M) bool -> new nodes.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.to_patient = nn.Linear(2 * dim, dim)
        self.update_patient = nn.Linear(2 * dim, dim)
        self.to_modality = nn.Linear(2 * dim, dim)
        self.update_modality = nn.Linear(2 * dim, dim)

    @staticmethod
    def _mean(messages: torch.Tensor, weight: torch.Tensor, dim: int) -> torch.Tensor:
        weight = weight.unsqueeze(-1)
        return (messages * weight).sum(dim) / weight.sum(dim).clamp_min(1.0)

    def forward(
        self,
        patients: torch.Tensor,
        modalities: torch.Tensor,
        edges: torch.Tensor,
        adjacency: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        b, m, _ = edges.shape
        weight = adjacency.to(edges.dtype)
        mod = modalities.unsqueeze(0).expand(b, -1, -1)
        pat = patients.unsqueeze(1).expand(-1, m, -1)
        into_patient = torch.relu(self.to_patient(torch.cat([mod, edges], dim=-1)))
        into_modality = torch.relu(self.to_modality(torch.cat([pat, edges], dim=-1)))
        new_patients = torch.relu(
            self.update_patient(torch.cat([patients, self._mean(into_patient, weight, 1)], -1))
        )
        new_modalities = torch.relu(
            self.update_modality(
                torch.cat([modalities, self._mean(into_modality, weight, 0)], dim=-1)
            )
        )
        return new_patients, new_modalities


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE between two views (B, D); row i's positive is row i of the other view."""
    a, b = F.normalize(a.float(), dim=-1), F.normalize(b.float(), dim=-1)
    logits = a @ b.T / temperature
    target = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


class MUSE(nn.Module):
    """Options: ``graph_layers`` (2), ``edge_drop`` (0.2), ``contrastive_weight`` (0.1),
    ``temperature`` (the model's contrastive temperature)."""

    def __init__(self, config: AMCConfig, options: dict | None = None) -> None:
        super().__init__()
        defaults = {
            "graph_layers": 2,
            "edge_drop": 0.2,
            "contrastive_weight": 0.1,
            "temperature": config.temperature,
        }
        self.opts = opts = resolve_options("muse", options, defaults)
        c = config
        self.encoders = ModalityEncoders(config)
        self.names = self.encoders.names
        self.edge_norm = nn.LayerNorm(c.hidden)
        self.patient_init = nn.Parameter(torch.randn(c.hidden) * 0.02)
        self.modality_init = nn.Parameter(torch.randn(len(self.names), c.hidden) * 0.02)
        self.layers = nn.ModuleList(
            BipartiteLayer(c.hidden) for _ in range(int(opts["graph_layers"]))
        )
        self.norm = nn.LayerNorm(c.hidden)
        self.head = make_head(config, c.hidden)

    def represent(self, edges: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        """Patient representations (B, D) from edge features (B, M, D) and adjacency (B, M)."""
        patients = self.patient_init.to(edges.dtype).expand(edges.shape[0], -1)
        modalities = self.modality_init.to(edges.dtype)
        for layer in self.layers:
            patients, modalities = layer(patients, modalities, edges, adjacency)
        return self.norm(patients)

    def drop_edges(self, adjacency: torch.Tensor) -> torch.Tensor:
        """A random view: each edge kept with prob 1 - edge_drop; a patient keeps >= 1 edge."""
        keep = adjacency & (
            torch.rand(adjacency.shape, device=adjacency.device) >= self.opts["edge_drop"]
        )
        # Where every edge of a patient was dropped, keep one of its edges at random.
        lost = adjacency.any(dim=1) & ~keep.any(dim=1)
        scores = torch.rand(adjacency.shape, device=adjacency.device).masked_fill(~adjacency, -1.0)
        rescue = F.one_hot(scores.argmax(dim=1), adjacency.shape[1]).bool() & lost[:, None]
        return keep | rescue

    def forward(
        self,
        inputs: dict[str, ModalityInput],
        present: torch.Tensor | None = None,
        fuse: bool = True,
    ) -> BaselineOutput:
        present = resolve_present(present, inputs, len(self.names))
        edges = self.edge_norm(self.encoders(inputs, present).mean(dim=2))  # (B, M, D)
        patients = self.represent(edges, present)
        aux = {}
        if self.training and self.opts["contrastive_weight"] > 0 and edges.shape[0] >= 2:
            view_a = self.represent(edges, self.drop_edges(present))
            view_b = self.represent(edges, self.drop_edges(present))
            loss = info_nce(view_a, view_b, float(self.opts["temperature"]))
            aux["muse_contrastive"] = self.opts["contrastive_weight"] * loss
        return BaselineOutput(logits=self.head(patients), aux_losses=aux)
