"""FTX: the study's two-step fine-tuning recipe (``bench finetune``) and the ``ftx`` extractor.

Heavy modules (torch, timm) are imported by the submodules that need them, not here.
"""
