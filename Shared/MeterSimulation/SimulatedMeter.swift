// Simulated meters: deterministic COSEM objects and the server side of an association.
