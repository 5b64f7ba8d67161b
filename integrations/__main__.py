from integrations.app import build

build().run()
