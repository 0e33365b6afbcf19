"""What moto lacks that the local runner's account must still answer.

moto 5.2.5 has no ListMarketplaceModelEndpoints (it raises NotImplementedError; FACTS.md lists
Bedrock's gaps). A moto account cannot hold a Marketplace endpoint, so the true answer is the
empty list; the sweep asks it every run. Served here only, for the local runner and the tests
that run handlers through it; tests of Marketplace endpoints themselves use botocore's Stubber.
"""

from __future__ import annotations

import json


def serve_marketplace_listing() -> None:
    """Give moto's Bedrock responses an empty ListMarketplaceModelEndpoints (idempotent; a
    moto that implements it keeps its own)."""
    try:
        from moto.bedrock.responses import BedrockResponse
    except ImportError:  # no moto: nothing to fill in
        return
    if "list_marketplace_model_endpoints" in vars(BedrockResponse):
        return

    def list_marketplace_model_endpoints(self: BedrockResponse) -> str:
        return json.dumps({"marketplaceModelEndpoints": []})

    # marked as this module's, so the embedded Bedrock stand-in (moto_ext.py) may serve over it
    list_marketplace_model_endpoints.perimeter_gap = True  # type: ignore[attr-defined]
    BedrockResponse.list_marketplace_model_endpoints = list_marketplace_model_endpoints  # type: ignore[attr-defined]
