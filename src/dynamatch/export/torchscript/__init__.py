"""Generated render loops for TorchScript, one module per family member (``python -m dynamatch.codegen``)."""
