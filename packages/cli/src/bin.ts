console.log("effect-ssl: the command is being built; see README.md for the status.")
