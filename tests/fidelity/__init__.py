"""Fidelity: meshswitch's rendering against goldens produced by each mesh's own injector."""
