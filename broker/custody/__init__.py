"""Where the broker's master keys live (key custody): in its config file, or in a PKCS#11 token (an
HSM) that computes with them and never lets them out. Everything that needs a master key (the audit
chain, its anchors, sealed engine passwords, asymmetric signers) asks this package for an object that
uses the key, never for its bytes."""
