"""What policy, provisioning and reviews share, below all three: the request queue and the rules
every request meets, the catalog of what the last sync knows (agents and entitlements, looked up
the ways people name them), identities, and the helpers their commands open the warehouse with.
Plain Python, no Dagster."""
