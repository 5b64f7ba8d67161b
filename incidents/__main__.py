from incidents.app import build

build().run()
