"""Posture controls of model deployments (practices 4-7) and the acting stage the posture
functions share (ModelPosture, IamGuard, FlowLogGuard)."""
