"""What the definitions are built from: the configured clients and their partitions."""

from __future__ import annotations

from dataclasses import dataclass

from metrics_pipeline.config.clients import ClientConfig, load_clients
from metrics_pipeline.partitions import PipelinePartitions, build_partitions


@dataclass(frozen=True)
class Catalog:
    clients: tuple[ClientConfig, ...]
    partitions: PipelinePartitions

    def client(self, client_id: str) -> ClientConfig:
        for client in self.clients:
            if client.id == client_id:
                return client
        raise KeyError(f"unknown client id {client_id!r}")

    @property
    def client_ids(self) -> list[str]:
        return [c.id for c in self.clients]


def build_catalog(
    clients: tuple[ClientConfig, ...] | None = None, history_start: str | None = None
) -> Catalog:
    clients = clients if clients is not None else load_clients()
    return Catalog(clients, build_partitions([c.id for c in clients], history_start))
