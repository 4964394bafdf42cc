"""The live controller: observe a Ray Serve app, decide with a policy, guard, act."""
