print("hello from the attune.packs demo")
