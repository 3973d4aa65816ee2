//! Server config (`geosteer.yaml`) and steering files (`<zone>.pools.yaml`): raw serde types, then validated runtime types.
