"""Sandbox outside services: small HTTP servers the project ships and runs as their own processes
(``loanops dev`` starts them; tests start them on free ports). Never imported by the system
itself, which reaches them only over HTTP through its adapters (``adapters/``)."""
