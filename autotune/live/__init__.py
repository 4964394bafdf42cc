"""The live controller: observe a Ray Serve app, decide with a policy, guard, act (issue 4)."""
