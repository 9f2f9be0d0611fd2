// CLI: the `sing-box` executable. Placeholder until the engine lands.
print("sing-box: not built yet")
