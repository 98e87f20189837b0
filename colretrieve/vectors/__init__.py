"""Floor 1: page vectors as storage keeps them and scoring reads them (panels, forms, norms)."""
