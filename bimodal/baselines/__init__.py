"""The baseline rows of Tables 1 and 12 as declared methods of the training engine (issue 18).

Each baseline is a `train.method` value. The engine (bimodal.train) asks `bimodal.baselines.registry.get(method)`
for the separator to build, the loss of a batch, the test-time estimates and how to reload best.pt; everything else
(data, optimiser, schedule, validation, BSS-Eval on the shipped test sets, run folders) is the engine's own, so a
baseline differs from the proposed method only where its paper does. docs/baselines.md says how each differs from
the cited implementation.

Modules: `names` (the method names and their config checks; imports nothing of the package, so bimodal.config can
use it), `registry` (the dispatch table the engine uses), `permutation` (PIT / MixIT objectives and the test-time
matching), `unconditional` (the U-Net with learned output slots), one module per method family.
"""
